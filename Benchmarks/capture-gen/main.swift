print("capture-gen: not written yet")
