//! Test plugin that misbehaves on purpose (alloc); proves the host's sandbox limits
