# Student of the test-only regression task (baseline): widths 8-16-32.
_base_ = ['./_base_.py']
model = dict(type='PixelRegressor', widths=(8, 16, 32),
             data_preprocessor={{_base_.data_preprocessor}})
