# Teacher of the test-only regression task: widths 16-32-64.
_base_ = ['./_base_.py']
model = dict(type='PixelRegressor', widths=(16, 32, 64),
             data_preprocessor={{_base_.data_preprocessor}})
