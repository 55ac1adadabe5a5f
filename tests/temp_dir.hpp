// A fresh directory under the system temp directory for one test, removed with everything in
// it when the test ends (pass or fail).
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <random>
#include <string>
#include <system_error>

namespace test_support {

class temp_dir {
 public:
  /// `create`: make the directory now (false: only its name, for code that must create it).
  explicit temp_dir(bool create = true) {
    static std::atomic<unsigned> made{0};
    const auto unique =
        std::to_string(::getpid()) + "_" + std::to_string(made++) + "_" + std::to_string(std::random_device{}());
    path = std::filesystem::temp_directory_path() / ("sluice_test_" + unique);
    if (create) {
      std::filesystem::create_directories(path);
    }
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }

  [[nodiscard]] std::string str() const { return path.string(); }
  [[nodiscard]] std::string operator/(const std::string& name) const { return (path / name).string(); }

  std::filesystem::path path;
};

/// A directory of this process's own for files with fixed names, removed at exit: two runs of
/// a suite at once (two builds' tests, two checkouts) must not write or delete each other's files.
inline const temp_dir& process_dir() {
  static const temp_dir dir;
  return dir;
}

}  // namespace test_support
