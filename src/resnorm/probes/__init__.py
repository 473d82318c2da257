"""Stand-alone measurements that check a paper's statement in the paper's own setting.

``resnorm probe xiong``: the FFN second-weight gradient at initialisation (Xiong et al.
2020, Fig. 3 and Theorem 1), measured on the harness's own models and data.
"""
