//! (filled in by the hermetic workflow tests)
