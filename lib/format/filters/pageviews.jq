# Pageview events only.
def pageviews: select(.type == "pageview");
