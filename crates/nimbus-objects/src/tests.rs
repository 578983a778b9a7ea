//! The store's behaviour, as tables of cases.
