//! Builds the whole server from one `Config`: database, actors, routes.
//! `main` and the tests both start the application through here.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_http::HttpService;
use actix_service::{fn_service, map_config};
use actix_web::dev::{AppConfig, Server, ServerHandle};
use actix_web::{middleware, web, App};

use crate::auth::Authenticator;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::db::Db;
use crate::engine::cluster::Cluster;
use crate::engine::hub::Hub;
use crate::engine::metrics::Metrics;
use crate::engine::persistence::{ConnectionSource, PersistSettings, Persistence};
use crate::engine::registry::Registry;
use crate::engine::scheduler::SchedulerActor;
use crate::engine::{DisconnectReason, EngineDeps};
use crate::error::AppError;
use crate::http;
use crate::state::AppState;

pub struct Application {
    server: Server,
    port: u16,
    state: web::Data<AppState>,
}

impl Application {
    pub async fn build(config: Config, clock: SharedClock) -> Result<Self, String> {
        Self::build_with_source(config, clock, None).await
    }

    /// As `build`, with the persistence actor taking its connections from
    /// `source` instead of the pool (tests use it to cut the database off).
    pub async fn build_with_source(
        config: Config,
        clock: SharedClock,
        source: Option<Arc<dyn ConnectionSource>>,
    ) -> Result<Self, String> {
        let db = Db::connect(&config.database_url, config.backend(), config.db_pool_size)?
            .with_read_wait(Duration::from_secs(config.db_read_wait_secs));
        let metrics = Arc::new(Metrics::default());
        let hub = Arc::new(Hub::new(Arc::clone(&metrics)));
        let cluster = match &config.redis_url {
            Some(url) => {
                let node_id = config.node_id.unwrap_or_else(uuid::Uuid::new_v4);
                let timeout = Duration::from_secs(config.node_timeout_secs.max(3));
                Some(Cluster::connect(url, node_id, timeout, Arc::clone(&hub), Arc::clone(&metrics)).await?)
            }
            None => None,
        };
        match &cluster {
            // Other nodes' people are still in their rooms.
            Some(cluster) if cluster.others_alive().await? => {}
            _ => close_attendance_left_open(&db, &clock)?,
        }
        let source = source.unwrap_or_else(|| Arc::new(db.pool.clone()));
        let persistence = Persistence::start(
            source,
            PersistSettings {
                batch_max: config.persist_batch_max.max(1),
                linger: Duration::from_millis(config.persist_flush_ms),
                capacity: config.persist_queue_capacity.max(1),
                retry_max: Duration::from_millis(config.persist_retry_max_ms.max(50)),
            },
            Arc::clone(&metrics),
        );
        let deps = Arc::new(EngineDeps {
            config: config.clone(),
            db: db.clone(),
            clock: clock.clone(),
            persistence: persistence.clone(),
            metrics: Arc::clone(&metrics),
        });
        let registry = Registry::new(deps, hub, cluster.clone());
        if let Some(cluster) = &cluster {
            cluster.start(Arc::clone(&registry)).await?;
        }
        let scheduler = SchedulerActor::start(Arc::clone(&registry));
        let state = web::Data::new(AppState {
            scheduler,
            auth: Authenticator::new(db.clone(), clock.clone(), &config),
            config: config.clone(),
            db,
            clock,
            persistence,
            registry,
            metrics,
        });

        let listener = TcpListener::bind(&config.bind_addr)
            .map_err(|err| format!("cannot listen on {}: {err}", config.bind_addr))?;
        let port = listener.local_addr().map_err(|err| err.to_string())?.port();
        let app_state = state.clone();
        // What actix-web's `HttpServer::listen` builds, plus an upgrade
        // service: WebSocket upgrades bypass the App and get the raw stream.
        let server = Server::build()
            .workers(config.http_workers())
            // Signals are ours: shutdown must close sockets and flush writes first.
            .disable_signals()
            .shutdown_timeout(5)
            .listen("classroom", listener, move || {
                let upgrade_state = app_state.clone();
                let timeout = Duration::from_secs(app_state.config.http_request_timeout_secs.max(1));
                let app = App::new()
                    .app_data(app_state.clone())
                    .wrap_fn(move |req, service| {
                        use actix_web::dev::Service;
                        let answer = service.call(req);
                        async move {
                            tokio::time::timeout(timeout, answer).await.unwrap_or_else(|_| {
                                Err(AppError::new(
                                    actix_web::http::StatusCode::REQUEST_TIMEOUT,
                                    "request_timeout",
                                    "The request took too long to arrive.",
                                )
                                .into())
                            })
                        }
                    })
                    .wrap(middleware::Logger::default())
                    .configure(http::configure);
                HttpService::build()
                    // Headers dribbled in are cut off as a body is (408); they
                    // are small, so 5 s at most whatever the body may take.
                    .client_request_timeout(timeout.min(Duration::from_secs(5)))
                    // Without it Nagle holds a small frame (an ack right after a
                    // new-message) until the client's delayed ACK, up to 40 ms.
                    .tcp_nodelay(true)
                    .upgrade(fn_service(move |(req, framed)| {
                        http::ws::serve_upgrade(upgrade_state.clone(), req, framed)
                    }))
                    .finish(map_config(app, |_| AppConfig::default()))
                    .tcp()
            })
            .map_err(|err| err.to_string())?
            .run();
        Ok(Self { server, port, state })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// Sockets do not outlive the process, so whoever the database still counts
/// as present in a live session (the server was killed) left by now: their
/// rows are closed at this start, the latest moment they can have been
/// there. (With several nodes on one database this belongs to the node's
/// own rows; see the scale-out issue.)
fn close_attendance_left_open(db: &Db, clock: &SharedClock) -> Result<(), String> {
    let mut conn = db.pool.get().map_err(|err| format!("cannot reach the database: {err}"))?;
    let closed = crate::db::live_sessions::close_open_attendance(&mut conn, None, crate::db::to_db_time(clock.now()))
        .map_err(|err| format!("cannot close attendance left open: {err}"))?;
    if closed > 0 {
        log::warn!("closed {closed} attendance row(s) left open by the previous run");
    }
    Ok(())
}

/// Graceful stop: no new connections, every socket closed with 1001, every
/// buffered write committed, then the server stops. Returns whether all
/// writes made it within the configured timeout.
pub async fn shutdown(state: &AppState, server: &ServerHandle) -> bool {
    server.pause().await;
    let sockets = state.registry.disconnect_all(DisconnectReason::ServerShutdown);
    log::info!("shutting down: closing {sockets} socket(s)");
    // Closing sockets leaves rooms, which writes attendance: let that happen
    // before the final flush.
    let deadline = Instant::now() + Duration::from_secs(2);
    while state.registry.hub.open_sockets() > 0 && Instant::now() < deadline {
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    let timeout = Duration::from_secs(state.config.shutdown_timeout_secs);
    let flushed = state.persistence.drain(timeout).await;
    // Its rooms and queues are stored: the other nodes may take them now.
    if let Some(cluster) = &state.registry.cluster {
        cluster.leave().await;
    }
    // Requests already on open keep-alive connections still finish (and
    // write) while the server stops; drain once more after them.
    server.stop(true).await;
    let flushed = flushed && state.persistence.drain(timeout).await;
    if flushed {
        log::info!("all buffered writes committed");
    } else {
        log::error!("shutdown timeout: some buffered writes were not committed");
    }
    flushed
}

/// Resolves on SIGTERM or SIGINT.
pub async fn termination_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(err) => {
                log::error!("cannot listen for SIGTERM ({err}); only Ctrl-C stops gracefully");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
