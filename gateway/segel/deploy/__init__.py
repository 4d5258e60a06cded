"""Files for a production deployment: broker accounts, ACLs and config generated from the registry."""
