# The events of one tenant: tenant("acme").
def tenant($name): select(.tenant_id == $name);
