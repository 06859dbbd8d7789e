"""Full fine-tuning: every backbone weight and the head train (the upper reference of Jia et al., "Visual
Prompt Tuning", ECCV 2022, Table 1, and of the InsVP paper's comparison).
"""
