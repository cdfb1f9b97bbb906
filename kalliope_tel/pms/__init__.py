"""The hotel's property-management system (PMS) link, over FIAS."""
