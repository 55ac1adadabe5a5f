// The contract between a bounded source and the batch runner: the input is a sequence of
// units (bytes of a file, elements of a range) that the runner cuts into chunks, and each chunk
// is parsed on its own thread. A chunk boundary is a guess (the first line start after a byte
// offset); the runner checks it against where the previous chunk really ended and re-parses the
// chunk when they differ, so a quoted newline across a boundary can never split a record.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "sluice/io/bad_record.hpp"

namespace sluice {

/// A bad record as a parser reports it: positions relative to its chunk, so that workers need
/// not know how many lines came before them.
struct chunk_bad_record {
  std::uint64_t offset = 0;      // absolute unit offset of the record's start
  std::uint64_t length = 0;      // units the record spans
  std::uint64_t local_line = 0;  // newlines between the chunk's start and the record's start
  std::string reason;
};

/// What parsing a chunk found.
struct chunk_outcome {
  std::size_t next = 0;       // where the first record at or after the chunk's stop begins
  std::uint64_t lines = 0;    // newlines consumed (records, blank lines, embedded newlines)
  std::uint64_t records = 0;  // records emitted
  std::uint64_t bad = 0;      // bad records reported
  bool stopped = false;       // the report callback asked to stop
};

/// A chunk's bad record with its absolute line and its text (cut at the input's record limit),
/// given the absolute line where the chunk starts.
template <class Input>
bad_record absolute_bad_record(const Input& input, std::uint64_t first_line, const chunk_bad_record& bad) {
  const std::uint64_t max_text = input.options().max_record_bytes;
  return bad_record{input.name(), first_line + bad.local_line, bad.offset, bad.reason,
                    input.text(bad.offset, std::min<std::uint64_t>(bad.length, max_text))};
}

}  // namespace sluice
