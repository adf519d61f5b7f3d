# Click events only.
def clicks: select(.type == "click");
