# Custom events only.
def customs: select(.type == "custom");
