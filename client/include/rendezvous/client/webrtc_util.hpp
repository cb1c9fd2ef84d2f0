#pragma once
// Small pure helpers for WebRTC engines: SDP media sections and ICE server
// URLs. No I/O.
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rendezvous::client {

// The mid of each m= section of `sdp`, in order (the section's index as text
// when it has no a=mid). webrtcbin takes candidates by m-line index, the
// protocol carries the mid: this maps one to the other.
std::vector<std::string> media_mids(std::string_view sdp);

// The m-line index of `mid` in `mids`; when not found, 0 if there is a single
// section (or none), else nullopt.
std::optional<unsigned> mline_index(const std::vector<std::string>& mids, std::string_view mid);

// "candidate:..." without libdatachannel's "a=" prefix (and trailing CR/LF).
std::string strip_candidate_prefix(std::string_view candidate);

// ICE servers in GStreamer's URL form: stun://HOST:PORT and
// turn(s)://USER:PASS@HOST:PORT[?transport=..].
struct gst_ice_servers {
  std::vector<std::string> stun;
  std::vector<std::string> turn;
};

// From a welcome's `iceServers` ([{"urls": "..."|[...], "username", "credential"}])
// plus extra URLs given on the command line (stun:HOST:PORT,
// turn:USER:PASS@HOST:PORT, or the gst forms). Unknown schemes are skipped
// and reported in `skipped`.
gst_ice_servers to_gst_ice_servers(const nlohmann::json& ice_servers, const std::vector<std::string>& extra,
                                   std::vector<std::string>* skipped = nullptr);

}  // namespace rendezvous::client
