// Running the example binaries from end-to-end tests: a private temp directory, a run with
// captured stdout/stderr and exit status, and small text helpers for reading their output.
#pragma once

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace e2e {

/// A private directory for this process's files, removed at exit.
struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "sluice-e2e-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::runtime_error("mkdtemp failed");
    }
    path = pattern;
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

inline std::filesystem::path tmp(const std::string& name) {
  static temp_dir dir;
  return dir.path / name;
}

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void write_file(const std::filesystem::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
  REQUIRE(out.good());
}

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (const char c : s) {
    q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  }
  return q + "'";
}

struct run_result {
  int status = -1;  // the exit status, or -1 if the process did not exit normally
  std::string out;
  std::string err;
};

/// Fresh paths in the temp directory for one run's stdout and stderr (shared by every run of
/// the process, whether through run() or a test's own fork/exec).
struct output_files {
  std::filesystem::path out;
  std::filesystem::path err;
};

inline output_files next_output_files() {
  static int calls = 0;
  const int n = ++calls;
  return {tmp("stdout-" + std::to_string(n)), tmp("stderr-" + std::to_string(n))};
}

/// The result of a finished run, from its wait status (as std::system or waitpid report it) and
/// the files its stdout and stderr went to, which are then removed.
inline run_result collect(int wait_status, const output_files& files) {
  run_result r;
  r.status = wait_status != -1 && WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
  r.out = read_file(files.out);
  r.err = read_file(files.err);
  std::filesystem::remove(files.out);
  std::filesystem::remove(files.err);
  return r;
}

inline run_result run(const std::string& binary, const std::vector<std::string>& args) {
  const output_files files = next_output_files();
  std::string cmd = shell_quote(binary);
  for (const auto& a : args) {
    cmd += ' ' + shell_quote(a);
  }
  cmd += " >" + shell_quote(files.out.string()) + " 2>" + shell_quote(files.err.string()) + " </dev/null";
  return collect(std::system(cmd.c_str()), files);
}

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    out.push_back(line);
  }
  return out;
}

inline std::vector<std::string> split(const std::string& line, char delimiter = ',') {
  std::vector<std::string> out;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, delimiter)) {
    out.push_back(field);
  }
  if (!line.empty() && line.back() == delimiter) {
    out.emplace_back();
  }
  return out;
}

/// The CSV header, then the rows sorted: stream mode prints rows as they are emitted.
inline std::string sorted_rows(const std::string& csv) {
  auto lines = lines_of(csv);
  REQUIRE(!lines.empty());
  std::sort(lines.begin() + 1, lines.end());
  std::string out;
  for (const auto& l : lines) {
    out += l + "\n";
  }
  return out;
}

/// Whether `program` is an executable in one of PATH's directories (Graphviz's dot, say, which
/// tests use where it is installed and do without where it is not).
inline bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (!dir.empty() && ::access((std::filesystem::path(dir) / program).c_str(), X_OK) == 0) {
      return true;
    }
  }
  return false;
}

/// `dot -Tsvg` over DOT text: its exit status and output (stdout, then stderr).
inline run_result render_with_dot(const std::string& dot_text) {
  static int calls = 0;
  const auto file = tmp("graph-" + std::to_string(++calls) + ".dot");
  write_file(file, dot_text);
  return run("dot", {"-Tsvg", file.string()});
}

/// Start `BINARY ARGS --listen 127.0.0.1:0`, wait until it prints "listening on", then run
/// `then` (a shell snippet that sees the port in $port, the server's pid in $pid and its stderr
/// file in $err), and wait for the server. If `then` fails, the server is killed rather than left
/// waiting for connections. Its stdout is the script's stdout; its stderr is appended to the
/// script's stderr.
inline run_result with_server(const std::string& binary, const std::vector<std::string>& args,
                              const std::string& then) {
  static int calls = 0;
  // A fresh file per server: the shell truncates it in the child, after the parent may already
  // be reading it, so a reused name could show the previous server's port.
  const std::string err = tmp("server-err-" + std::to_string(++calls)).string();
  std::string cmd = shell_quote(binary);
  for (const auto& a : args) {
    cmd += ' ' + shell_quote(a);
  }
  const std::string script = "err=" + shell_quote(err) + "\n" + cmd +
                             " --listen 127.0.0.1:0 2>\"$err\" & pid=$!\n"
                             "for i in $(seq 3000); do grep -q 'listening on' \"$err\" 2>/dev/null && break; "
                             "sleep 0.01; done\n"
                             "port=$(sed -n 's/.*listening on .*:\\([0-9]*\\)$/\\1/p' \"$err\")\n"
                             "{\n" +
                             then +
                             "\n} || kill -9 $pid\n"
                             "wait $pid; status=$?\ncat \"$err\" >&2\nexit $status\n";
  return run("/bin/sh", {"-c", script});
}

/// The shell command that sends FILE's data lines to the server on $port over N connections.
inline std::string send_lines_to_port(const std::string& send_lines, const std::string& file, int connections,
                                      const std::string& split) {
  return shell_quote(send_lines) + " " + shell_quote(file) + " --to 127.0.0.1:$port --connections " +
         std::to_string(connections) + " --split " + split + " 2>/dev/null";
}

}  // namespace e2e
