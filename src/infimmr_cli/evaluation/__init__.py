"""The paper's five benchmarks (DESIGN §6): where each export lives, how its subsets are counted, how runs compare.

benches.py  the registry: bench name -> export location, prepare reader, subset keys, paper column
tally.py    pure counting: scores -> k/N overall and per subset
report.py   results.json and the rich tables
compare.py  checkpoints x benchmarks: the paper's Table 1 shape, as Markdown and a PNG
paper.py    the numbers the paper reports, for the README and `--with-paper`
"""
