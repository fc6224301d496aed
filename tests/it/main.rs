//! The workspace's integration tests: one binary, one module per area, all against real
//! servers started by the rig (`test-support`).

mod rig;
