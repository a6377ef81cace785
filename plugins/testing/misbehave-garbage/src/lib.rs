//! Test plugin that misbehaves on purpose (garbage); proves the host's sandbox limits
