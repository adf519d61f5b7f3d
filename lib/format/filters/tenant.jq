# tenant("acme"): the events of one tenant.
def tenant($name): select(.tenant_id == $name);
