//! qus
