// GET /flow: a served flow's picture (ops/describe.hpp), for a server's router:
//
//   router.add("/flow", sluice::flow_page(sluice::describe(my_flow), "revenue by region"));
//
//   GET /flow               the Graphviz DOT text (text/vnd.graphviz)
//   GET /flow?format=svg    rendered by Graphviz's `dot` program when it is on PATH; 404 saying
//                           so when it is not (Graphviz is optional: the DOT renders anywhere)
//   GET /flow?format=text   one line a stage, as to_text() prints it
//
// Performance: the DOT and text are made once, when the page is; an SVG request runs `dot`
// (tens of milliseconds, on the server's thread: the page is for people, not for polling).
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "sluice/io/posix_files.hpp"
#include "sluice/ops/describe.hpp"
#include "sluice/serve/http_server.hpp"

extern char** environ;  // NOLINT: POSIX declares it for posix_spawn's callers to pass

namespace sluice {

namespace detail {
/// The first executable `name` in PATH's directories.
inline std::optional<std::string> find_on_path(std::string_view name) {
  const char* path = std::getenv("PATH");
  std::string_view dirs = path != nullptr ? path : "";
  while (!dirs.empty()) {
    const std::size_t colon = dirs.find(':');
    const std::string_view dir = dirs.substr(0, colon);
    dirs = colon == std::string_view::npos ? std::string_view() : dirs.substr(colon + 1);
    if (!dir.empty()) {
      const std::string candidate = (std::filesystem::path(dir) / name).string();
      if (::access(candidate.c_str(), X_OK) == 0) {
        return candidate;
      }
    }
  }
  return std::nullopt;
}

/// `dot -Tsvg` over `dot_text`: the SVG, or an http_error with what went wrong. The text goes in
/// through a temporary file (no shell, and no pipe both ways that could fill up and stall).
inline std::string render_svg(const std::string& dot_program, const std::string& dot_text) {
  std::string input = (std::filesystem::temp_directory_path() / "sluice-flow-XXXXXX").string();
  const detail::unique_fd in{::mkstemp(input.data())};
  if (!in.is_open()) {
    throw http_error(500, "cannot create a temporary file for dot: " + std::system_category().message(errno));
  }
  const struct remove_at_exit {
    std::string path;
    ~remove_at_exit() { ::unlink(path.c_str()); }
  } cleanup{input};
  if (::write(in.get(), dot_text.data(), dot_text.size()) != static_cast<ssize_t>(dot_text.size())) {
    throw http_error(500, "cannot write the temporary file for dot");
  }
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    throw http_error(500, "cannot make a pipe for dot: " + std::system_category().message(errno));
  }
  const detail::unique_fd read_end{pipe_fds[0]};
  detail::unique_fd write_end{pipe_fds[1]};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 2);  // its complaints, for the 500 below
  const char* argv[] = {dot_program.c_str(), "-Tsvg", input.c_str(), nullptr};
  pid_t pid = 0;
  const int spawned =
      ::posix_spawn(&pid, dot_program.c_str(), &actions, nullptr, const_cast<char* const*>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    throw http_error(500, "cannot run " + dot_program + ": " + std::system_category().message(spawned));
  }
  write_end.reset();  // so that the read below ends when dot exits
  std::string out;
  char buf[8192];
  ssize_t n = 0;
  while ((n = ::read(read_end.get(), buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    out.append(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw http_error(500, "dot failed: " + out);
  }
  return out;
}
}  // namespace detail

/// The handler for GET /flow (see the top of this header).
inline http_handler flow_page(const flow_description& flow, std::string_view title) {
  return [dot = to_dot(flow, title), text = to_text(flow)](const http_request& request) {
    const std::string format(request.param("format").value_or("dot"));
    for (const auto& [name, value] : request.params) {
      if (name != "format") {
        throw http_error(400, "unknown parameter '" + name + "' (known: format)");
      }
    }
    if (format == "dot") {
      return http_response{200, "text/vnd.graphviz; charset=utf-8", dot};
    }
    if (format == "text") {
      return http_response{200, "text/plain; charset=utf-8", text};
    }
    if (format != "svg") {
      throw http_error(400, "format is dot, svg or text, not '" + format + "'");
    }
    const auto program = detail::find_on_path("dot");
    if (!program) {
      throw http_error(404,
                       "no SVG here: Graphviz's dot program is not installed on this server (Debian: apt-get "
                       "install graphviz); GET /flow gives the DOT text, which `dot -Tsvg` renders anywhere");
    }
    return http_response{200, "image/svg+xml", detail::render_svg(*program, dot)};
  };
}

}  // namespace sluice
