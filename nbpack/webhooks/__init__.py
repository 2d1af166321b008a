"""Notifications to ESAP when a return bundle arrives: a durable outbox in storage, sent by any replica, signed in the
Standard Webhooks format per tenant, fair between tenants, and only to callback addresses that are safe to reach."""
