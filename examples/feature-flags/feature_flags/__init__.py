"""A service that adds its own tables to the deployment platform's: feature flags and deploy windows."""
