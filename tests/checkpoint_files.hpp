// Checkpoint directories as tests look at them: a copy taken now (what a process killed this
// instant leaves behind) and the source position a checkpoint covers, read without the flow.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "sluice/core/codec.hpp"
#include "sluice/store/checkpoint.hpp"

namespace test_support {

/// `to` made a copy of the checkpoint files of `from` as they are this instant: what a process
/// killed now would leave (each file is replaced atomically, so each copy is one whole version).
inline void copy_checkpoints(const std::filesystem::path& from, const std::filesystem::path& to) {
  std::filesystem::remove_all(to);
  std::filesystem::create_directories(to);
  for (const auto& e : std::filesystem::directory_iterator(from)) {
    if (e.path().extension() == ".ckpt") {
      std::filesystem::copy_file(e.path(), to / e.path().filename(), std::filesystem::copy_options::overwrite_existing);
    }
  }
}

/// The source position checkpoint `name` in `dir` covers (an offset, a byte), if there is one.
inline std::optional<std::int64_t> checkpoint_position(const std::filesystem::path& dir, const std::string& name) {
  if (!std::filesystem::exists(dir)) {
    return std::nullopt;
  }
  const auto c = sluice::checkpoint_dir(dir.string()).load(name);
  const std::string* position = c ? c->find("position") : nullptr;
  if (position == nullptr) {
    return std::nullopt;
  }
  sluice::byte_reader r(*position);
  std::int64_t at = 0;
  sluice::decode(r, at);
  return at;
}

}  // namespace test_support
