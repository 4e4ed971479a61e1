// AirServer wires the parts into a running service: the storage,
// the event hub, the gRPC services (plus health and reflection) and the
// housekeeping tasks. aird's main() and the integration tests both use it,
// so tests exercise exactly what production runs.
#ifndef AIR_SERVICE_SERVER_H_
#define AIR_SERVICE_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "domain/clock.h"
#include "domain/lifecycle.h"
#include "domain/policy.h"
#include "service/upstream_link.h"
#include "service/watch_stream.h"

namespace air {

class Storage;
class EventHub;
class ExpirySweeper;
class EventRetention;
class ServerMetrics;

// True for 127.0.0.0/8, ::1 and localhost listen addresses.
bool IsLoopbackAddress(const std::string& listen_address);

// The contents of a PEM (or other small text) file; FAILED_PRECONDITION
// naming `what` and the path when it cannot be read.
absl::StatusOr<std::string> ReadPemFile(const std::string& path, absl::string_view what);

// TLS for the gRPC listener (PEM files).
struct TlsOptions {
  std::string cert_file;
  std::string key_file;
  // CA for client certificates: enables mutual TLS.
  std::string client_ca_file;
  // Refuse clients without a valid certificate (the handshake fails).
  bool require_client_cert = false;
  bool enabled() const { return !cert_file.empty(); }
};

struct ServerOptions {
  // gRPC listen address; port 0 picks a free port (see AirServer::port()).
  std::string listen_address = "127.0.0.1:50051";
  // SQLite database file, or a PostgreSQL URI (postgresql://... or
  // postgres://...) to share one database between several replicas.
  std::string db_path = "air.db";
  // PostgreSQL: how often a replica that is not the leader tries to take
  // over (and the leader checks its lock).
  absl::Duration leader_retry_interval = absl::Seconds(1);
  // fsync every commit (PRAGMA synchronous=FULL) instead of NORMAL.
  bool full_fsync = false;
  // Fill an empty database with the demo set.
  bool demo = false;
  // How long a pending action waits before it expires.
  absl::Duration action_ttl = kDefaultActionTtl;
  // How often the expiry sweeper and event retention run; zero disables the
  // timers (tests call RunOnce themselves).
  absl::Duration housekeeping_interval = absl::Seconds(30);
  // Event log retention: by age, and a row cap.
  absl::Duration event_retention = absl::Hours(24 * 7);
  int64_t max_events = 10'000'000;
  // HTTP/2 keepalive ping interval and maximum connection age (zero: none).
  absl::Duration keepalive_time = absl::Seconds(60);
  absl::Duration max_connection_age = absl::ZeroDuration();
  // Largest request message accepted, in bytes.
  int max_receive_message_bytes = 1 << 20;
  WatchLimits watch_limits;
  // The upstream engine to sync with (target "" = none, else HOST:PORT),
  // and how.
  UpstreamOptions upstream;
  // TLS; empty means plaintext.
  TlsOptions tls;
  // Tokens file (see service/auth.h); empty disables authentication.
  std::string tokens_file;
  // Serve a non-loopback address without TLS and authentication.
  bool allow_insecure = false;
  // HOST:PORT for the web console and its JSON API (service/http_gateway.h);
  // empty (the default) serves no HTTP. Port 0 picks a free port (see
  // AirServer::http_port()). HTTPS with the gRPC TLS files when they are set;
  // the same rule as for gRPC refuses a non-loopback address without TLS and
  // authentication unless allow_insecure.
  std::string http_listen_address;
  // Two-person approval and automation rules.
  DecisionPolicy policy;
  // Prometheus metrics endpoint (HTTP GET /metrics), HOST:PORT; port 0 picks
  // a free port (see AirServer::metrics_port()). Empty: none.
  std::string metrics_listen;
  // Plaintext gRPC listener serving only grpc.health.v1.Health (for probes
  // that cannot do TLS); port 0 picks a free port. Empty: none.
  std::string health_listen;
  // Used by aird's main(), not by AirServer: log format ("auto", "text",
  // "json") and level, and how long in-flight calls may finish after SIGTERM.
  std::string log_format = "auto";
  std::string log_level = "info";
  absl::Duration shutdown_grace = absl::Seconds(10);
  // Also main()'s: files to write the bound gRPC and HTTP ports to once
  // serving (empty: none).
  std::string port_file;
  std::string http_port_file;
  // Injected clock (not owned); null means the system clock.
  const Clock* clock = nullptr;
};

class AirServer {
 public:
  // Opens the storage, loads demo data if asked, and starts serving.
  // Fails (never half-starts) if the database cannot be opened, the address
  // cannot be bound, or a non-loopback address would be served without TLS
  // and authentication (FAILED_PRECONDITION unless allow_insecure).
  static absl::StatusOr<std::unique_ptr<AirServer>> Start(const ServerOptions& options);
  ~AirServer();

  // The bound port.
  int port() const;
  // The health-only port (0 without health_listen) and the metrics port (0
  // without metrics_listen).
  int health_port() const;
  int metrics_port() const;
  ServerMetrics& metrics();
  // The bound HTTP port of the web console; 0 when HTTP is off.
  int http_port() const;
  // Ends watch streams with UNAVAILABLE, lets in-flight calls finish within
  // `grace`, then stops. Idempotent.
  void Shutdown(absl::Duration grace = absl::Seconds(10));
  // Blocks until Shutdown() completes.
  void Wait();

  Storage& storage();
  EventHub& hub();
  ExpirySweeper& expiry_sweeper();
  EventRetention& event_retention();
  // Whether this replica runs sync, delivery and the expiry sweeper (always
  // true on SQLite; on PostgreSQL, the holder of the leader lock).
  bool is_leader() const;
  // The upstream sync link (always present; idle without an upstream).
  UpstreamLink& upstream();
  // Re-reads the tokens file (SIGHUP). OK when authentication is disabled.
  absl::Status ReloadTokens();

  struct Parts;

 private:
  explicit AirServer(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

}  // namespace air

#endif  // AIR_SERVICE_SERVER_H_
