# The embedded demo (`make demo`): both tasks on data that ships with scikit-learn (no
# download, no GPU), each a teacher, a baseline student and KD, AT, CAT-KD and TaT students.
# Results under <work dir>/demo_cls and <work dir>/demo_seg.
suites = ['demo_cls.py', 'demo_seg.py']
