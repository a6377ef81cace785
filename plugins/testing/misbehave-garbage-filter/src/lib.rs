//! Test plugin that misbehaves on purpose (garbage-filter); proves the host's sandbox limits
