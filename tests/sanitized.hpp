// Whether this test binary (and so the programs it runs: the same build) has a sanitizer, where
// code runs several times slower: a test may then skip runs that add no coverage of their own.
#pragma once

namespace test_support {
#if defined(__has_feature)
inline constexpr bool sanitized = __has_feature(address_sanitizer) || __has_feature(thread_sanitizer);
#elif defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool sanitized = true;
#else
inline constexpr bool sanitized = false;
#endif
}  // namespace test_support
