//! A blocking Kubernetes CRI client (the `k8s-cri` crate's runtime.v1 protos over tonic) on containerd's
//! unix socket: what the kubelet would send, reduced to what the scenarios need.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
pub use k8s_cri::v1::*;
use tonic::transport::{Channel, Endpoint, Uri};

pub struct Cri {
    rt: tokio::runtime::Runtime,
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
}

fn status(e: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("CRI error {:?}: {}", e.code(), e.message())
}

impl Cri {
    pub fn connect(socket: &Path) -> Result<Cri> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("tokio runtime")?;
        let path: PathBuf = socket.to_path_buf();
        let channel = rt
            .block_on(async move {
                // The URI is a placeholder: the connector dials the unix socket.
                Endpoint::try_from("http://[::]:0")?
                    .connect_timeout(Duration::from_secs(10))
                    .timeout(Duration::from_secs(120))
                    .connect_with_connector(tower::service_fn(move |_: Uri| {
                        let path = path.clone();
                        async move {
                            Ok::<_, std::io::Error>(TokioIo::new(
                                tokio::net::UnixStream::connect(path).await?,
                            ))
                        }
                    }))
                    .await
            })
            .with_context(|| format!("connecting to CRI at {}", socket.display()))?;
        Ok(Cri {
            rt,
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
        })
    }

    pub fn version(&mut self) -> Result<VersionResponse> {
        let c = &mut self.runtime;
        self.rt
            .block_on(c.version(VersionRequest {
                version: "v1".into(),
            }))
            .map(|r| r.into_inner())
            .map_err(status)
    }

    pub fn image_status(&mut self, image: &str) -> Result<Option<Image>> {
        let c = &mut self.images;
        let req = ImageStatusRequest {
            image: Some(ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            verbose: false,
        };
        self.rt
            .block_on(c.image_status(req))
            .map(|r| r.into_inner().image)
            .map_err(status)
    }

    pub fn run_pod_sandbox(&mut self, config: PodSandboxConfig, handler: &str) -> Result<String> {
        let c = &mut self.runtime;
        let req = RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: handler.into(),
        };
        self.rt
            .block_on(c.run_pod_sandbox(req))
            .map(|r| r.into_inner().pod_sandbox_id)
            .map_err(status)
            .context("RunPodSandbox")
    }

    pub fn pod_sandbox_status(&mut self, id: &str) -> Result<PodSandboxStatus> {
        let c = &mut self.runtime;
        let req = PodSandboxStatusRequest {
            pod_sandbox_id: id.into(),
            verbose: false,
        };
        self.rt
            .block_on(c.pod_sandbox_status(req))
            .map_err(status)?
            .into_inner()
            .status
            .context("PodSandboxStatus without status")
    }

    pub fn list_pod_sandboxes(&mut self) -> Result<Vec<PodSandbox>> {
        let c = &mut self.runtime;
        self.rt
            .block_on(c.list_pod_sandbox(ListPodSandboxRequest { filter: None }))
            .map(|r| r.into_inner().items)
            .map_err(status)
    }

    pub fn stop_pod_sandbox(&mut self, id: &str) -> Result<()> {
        let c = &mut self.runtime;
        self.rt
            .block_on(c.stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: id.into(),
            }))
            .map(|_| ())
            .map_err(status)
            .context("StopPodSandbox")
    }

    pub fn remove_pod_sandbox(&mut self, id: &str) -> Result<()> {
        let c = &mut self.runtime;
        self.rt
            .block_on(c.remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: id.into(),
            }))
            .map(|_| ())
            .map_err(status)
            .context("RemovePodSandbox")
    }

    /// StopPodSandbox that fails after `limit` instead of waiting out containerd's own deadlines (a hung
    /// stop fails its scenario rather than stalling the suite). The deadline also goes to containerd
    /// (grpc-timeout), which cancels the request.
    pub fn stop_pod_sandbox_within(&mut self, id: &str, limit: Duration) -> Result<()> {
        let c = &mut self.runtime;
        let mut req = tonic::Request::new(StopPodSandboxRequest {
            pod_sandbox_id: id.into(),
        });
        req.set_timeout(limit);
        bounded(&self.rt, limit, c.stop_pod_sandbox(req))
            .with_context(|| format!("StopPodSandbox (limit {limit:?})"))
    }

    /// RemovePodSandbox with a deadline, as [`Cri::stop_pod_sandbox_within`].
    pub fn remove_pod_sandbox_within(&mut self, id: &str, limit: Duration) -> Result<()> {
        let c = &mut self.runtime;
        let mut req = tonic::Request::new(RemovePodSandboxRequest {
            pod_sandbox_id: id.into(),
        });
        req.set_timeout(limit);
        bounded(&self.rt, limit, c.remove_pod_sandbox(req))
            .with_context(|| format!("RemovePodSandbox (limit {limit:?})"))
    }

    pub fn create_container(
        &mut self,
        pod_id: &str,
        config: ContainerConfig,
        sandbox: PodSandboxConfig,
    ) -> Result<String> {
        let c = &mut self.runtime;
        let req = CreateContainerRequest {
            pod_sandbox_id: pod_id.into(),
            config: Some(config),
            sandbox_config: Some(sandbox),
        };
        self.rt
            .block_on(c.create_container(req))
            .map(|r| r.into_inner().container_id)
            .map_err(status)
            .context("CreateContainer")
    }

    pub fn start_container(&mut self, id: &str) -> Result<()> {
        let c = &mut self.runtime;
        self.rt
            .block_on(c.start_container(StartContainerRequest {
                container_id: id.into(),
            }))
            .map(|_| ())
            .map_err(status)
            .context("StartContainer")
    }

    pub fn container_status(&mut self, id: &str) -> Result<ContainerStatus> {
        let c = &mut self.runtime;
        self.rt
            .block_on(c.container_status(ContainerStatusRequest {
                container_id: id.into(),
                verbose: false,
            }))
            .map_err(status)
            .context("ContainerStatus")?
            .into_inner()
            .status
            .context("ContainerStatus without status")
    }

    pub fn exec_sync(
        &mut self,
        id: &str,
        cmd: &[&str],
        timeout_s: i64,
    ) -> Result<ExecSyncResponse> {
        let c = &mut self.runtime;
        let req = ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: timeout_s,
        };
        self.rt
            .block_on(c.exec_sync(req))
            .map(|r| r.into_inner())
            .map_err(status)
            .with_context(|| format!("ExecSync {cmd:?}"))
    }

    pub fn update_container_resources(
        &mut self,
        id: &str,
        linux: LinuxContainerResources,
    ) -> Result<()> {
        let c = &mut self.runtime;
        let req = UpdateContainerResourcesRequest {
            container_id: id.into(),
            linux: Some(linux),
            ..Default::default()
        };
        self.rt
            .block_on(c.update_container_resources(req))
            .map(drop)
            .map_err(status)
            .context("UpdateContainerResources")
    }

    pub fn stop_container(&mut self, id: &str, timeout_s: i64) -> Result<()> {
        let c = &mut self.runtime;
        let req = StopContainerRequest {
            container_id: id.into(),
            timeout: timeout_s,
        };
        self.rt
            .block_on(c.stop_container(req))
            .map(|_| ())
            .map_err(status)
            .context("StopContainer")
    }

    pub fn remove_container(&mut self, id: &str) -> Result<()> {
        let c = &mut self.runtime;
        self.rt
            .block_on(c.remove_container(RemoveContainerRequest {
                container_id: id.into(),
            }))
            .map(|_| ())
            .map_err(status)
            .context("RemoveContainer")
    }

    pub fn container_stats(&mut self, id: &str) -> Result<ContainerStats> {
        let c = &mut self.runtime;
        self.rt
            .block_on(c.container_stats(ContainerStatsRequest {
                container_id: id.into(),
            }))
            .map_err(status)
            .context("ContainerStats")?
            .into_inner()
            .stats
            .context("ContainerStats without stats")
    }

    pub fn list_containers(&mut self, pod_id: &str) -> Result<Vec<Container>> {
        let c = &mut self.runtime;
        let filter = ContainerFilter {
            pod_sandbox_id: pod_id.into(),
            ..Default::default()
        };
        self.rt
            .block_on(c.list_containers(ListContainersRequest {
                filter: Some(filter),
            }))
            .map(|r| r.into_inner().containers)
            .map_err(status)
    }
}

/// Runs a unary call to the end or until `limit` (plus a second for containerd's own cancellation to
/// come back), whichever is first.
fn bounded<T>(
    rt: &tokio::runtime::Runtime,
    limit: Duration,
    call: impl std::future::Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
) -> Result<()> {
    let bounded = async { tokio::time::timeout(limit + Duration::from_secs(1), call).await };
    match rt.block_on(bounded) {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(status(e)),
        Err(_) => Err(anyhow::anyhow!("no answer within {limit:?}")),
    }
}

/// A pod config: `host_network` selects NODE networking (then the hostname must stay empty).
pub fn pod_config(
    name: &str,
    uid: &str,
    log_dir: &Path,
    cgroup_parent: &str,
    host_network: bool,
) -> PodSandboxConfig {
    let ns = NamespaceOption {
        network: if host_network {
            NamespaceMode::Node
        } else {
            NamespaceMode::Pod
        } as i32,
        pid: NamespaceMode::Container as i32,
        ipc: NamespaceMode::Pod as i32,
        ..Default::default()
    };
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: uid.into(),
            namespace: "integ".into(),
            attempt: 0,
        }),
        hostname: if host_network {
            String::new()
        } else {
            name.into()
        },
        log_directory: log_dir.display().to_string(),
        labels: HashMap::from([("app".to_string(), name.to_string())]),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: cgroup_parent.into(),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(ns),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A container config running `command` from `image`, logging to `log_path` (relative to the pod's log
/// directory).
pub fn container_config(
    name: &str,
    image: &str,
    command: &[&str],
    log_path: &str,
) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: image.into(),
            ..Default::default()
        }),
        command: command.iter().map(|s| s.to_string()).collect(),
        log_path: log_path.into(),
        linux: Some(LinuxContainerConfig::default()),
        ..Default::default()
    }
}
