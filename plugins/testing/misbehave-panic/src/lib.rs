//! Test plugin that misbehaves on purpose (panic); proves the host's sandbox limits
