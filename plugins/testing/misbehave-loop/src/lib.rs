//! Test plugin that misbehaves on purpose (loop); proves the host's sandbox limits
