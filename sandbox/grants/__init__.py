"""OAuth grants: consent codes and their redemption, grant tokens, refresh, client tokens."""
