//! Wiring: turns parsed CLI arguments into calls on the library.
