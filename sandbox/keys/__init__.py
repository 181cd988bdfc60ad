"""Auth keys: minting under each kind of caller, revoking, deleting, and who may read them."""
