"""The notifier's REST API: subscriptions, their secrets, deliveries and their attempts."""
