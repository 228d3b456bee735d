//! The `records` bytes of one partition in a Fetch response, as they come: split into batches, CRCs checked,
//! records decoded (every codec the attributes name), as the consumer does. The CRC is not fixed up, so this
//! target mostly explores batch framing; `record_batch_valid_crc` gets past the CRC.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    weir_fuzz::walk_records(Bytes::copy_from_slice(data));
});
