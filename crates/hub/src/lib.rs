//! The bulkhead hub.
