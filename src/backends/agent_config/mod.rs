//! The agent's own configuration, through Microsoft's PowerShell module (issue 14).

pub mod scripts;
