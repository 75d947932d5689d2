//! The file helpers of `visage-io` under the path `cmd/embed.rs` uses
//! (`crate::tensor_file::read_regular_file`): one implementation, in the library.

pub use visage_io::read_regular_file;
