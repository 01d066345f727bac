"""placeholder"""
def run_all(tree, path):
    return []
