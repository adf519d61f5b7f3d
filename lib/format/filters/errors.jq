# Errors: custom events named "error", and any event with metadata.level "error".
def errors:
  select((.type == "custom" and .metadata.name == "error") or .metadata.level == "error");
