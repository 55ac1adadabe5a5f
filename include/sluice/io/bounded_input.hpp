// The contract between a bounded source and the batch runner: the input is a sequence of
// units (bytes of a file, elements of a range) that the runner cuts into chunks, and each chunk
// is parsed on its own thread. A chunk boundary is a guess (the first line start after a byte
// offset); the runner checks it against where the previous chunk really ended and re-parses the
// chunk when they differ, so a quoted newline across a boundary can never split a record.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

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

}  // namespace sluice
