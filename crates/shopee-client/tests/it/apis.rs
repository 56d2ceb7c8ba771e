//! Every API over HTTP against the sandbox.
