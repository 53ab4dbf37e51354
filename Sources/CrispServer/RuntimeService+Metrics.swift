import CrispCore
import CRIAPI
import CrispService
import GRPCCore

/// ListMetricDescriptors, ListPodSandboxMetrics, StreamPodSandboxMetrics (KEP-2371): the
/// kubelet's /metrics/cadvisor from the CRI, with cAdvisor's names and labels, read from the same
/// cgroup and network samples as the stats RPCs. The CRI carries whole numbers, so the
/// `_seconds_total` counters are whole seconds.
extension RuntimeService {
    enum MetricScope { case container, pod }

    struct MetricSpec: Sendable {
        var name: String
        var help: String
        var type: Runtime_V1_MetricType
        var scope: MetricScope
    }

    /// cAdvisor's container labels; pod network metrics name the interface instead of a container.
    static let containerLabels = ["container", "id", "image", "name", "namespace", "pod"]
    static let networkLabels = ["namespace", "pod", "interface"]

    static let metricSpecs: [MetricSpec] = [
        .init(name: "container_cpu_usage_seconds_total", help: "Cumulative cpu time consumed in seconds.", type: .counter, scope: .container),
        .init(name: "container_cpu_user_seconds_total", help: "Cumulative user cpu time consumed in seconds.", type: .counter, scope: .container),
        .init(name: "container_cpu_system_seconds_total", help: "Cumulative system cpu time consumed in seconds.", type: .counter, scope: .container),
        .init(name: "container_memory_usage_bytes", help: "Current memory usage in bytes, including all memory regardless of when it was accessed.", type: .gauge, scope: .container),
        .init(name: "container_memory_working_set_bytes", help: "Current working set in bytes.", type: .gauge, scope: .container),
        .init(name: "container_memory_rss", help: "Size of RSS in bytes.", type: .gauge, scope: .container),
        .init(name: "container_memory_cache", help: "Number of bytes of page cache memory.", type: .gauge, scope: .container),
        .init(name: "container_memory_failcnt", help: "Number of memory usage hits limits.", type: .counter, scope: .container),
        .init(name: "container_memory_failures_total", help: "Cumulative count of memory allocation failures (major page faults).", type: .counter, scope: .container),
        .init(name: "container_oom_events_total", help: "Count of out of memory events observed for the container.", type: .counter, scope: .container),
        .init(name: "container_processes", help: "Number of processes running inside the container.", type: .gauge, scope: .container),
        .init(name: "container_threads", help: "Number of threads running inside the container.", type: .gauge, scope: .container),
        .init(name: "container_fs_usage_bytes", help: "Number of bytes that are consumed by the container's writable layer.", type: .gauge, scope: .container),
        .init(name: "container_fs_inodes_total", help: "Number of inodes used by the container's writable layer.", type: .gauge, scope: .container),
        .init(name: "container_spec_memory_limit_bytes", help: "Memory limit for the container.", type: .gauge, scope: .container),
        .init(name: "container_spec_cpu_shares", help: "CPU share of the container.", type: .gauge, scope: .container),
        .init(name: "container_spec_cpu_quota", help: "CPU quota of the container.", type: .gauge, scope: .container),
        .init(name: "container_spec_cpu_period", help: "CPU period of the container.", type: .gauge, scope: .container),
        .init(name: "container_network_receive_bytes_total", help: "Cumulative count of bytes received.", type: .counter, scope: .pod),
        .init(name: "container_network_receive_packets_total", help: "Cumulative count of packets received.", type: .counter, scope: .pod),
        .init(name: "container_network_receive_errors_total", help: "Cumulative count of errors encountered while receiving.", type: .counter, scope: .pod),
        .init(name: "container_network_receive_packets_dropped_total", help: "Cumulative count of packets dropped while receiving.", type: .counter, scope: .pod),
        .init(name: "container_network_transmit_bytes_total", help: "Cumulative count of bytes transmitted.", type: .counter, scope: .pod),
        .init(name: "container_network_transmit_packets_total", help: "Cumulative count of packets transmitted.", type: .counter, scope: .pod),
        .init(name: "container_network_transmit_errors_total", help: "Cumulative count of errors encountered while transmitting.", type: .counter, scope: .pod),
        .init(name: "container_network_transmit_packets_dropped_total", help: "Cumulative count of packets dropped while transmitting.", type: .counter, scope: .pod),
    ]

    func listMetricDescriptors(_: Runtime_V1_ListMetricDescriptorsRequest) async throws -> Runtime_V1_ListMetricDescriptorsResponse {
        var out = Runtime_V1_ListMetricDescriptorsResponse()
        out.descriptors = Self.metricSpecs.map { m in
            var d = Runtime_V1_MetricDescriptor()
            d.name = m.name
            d.help = m.help
            d.labelKeys = m.scope == .container ? Self.containerLabels : Self.networkLabels
            return d
        }
        return out
    }

    func listPodSandboxMetrics(_: Runtime_V1_ListPodSandboxMetricsRequest) async throws -> Runtime_V1_ListPodSandboxMetricsResponse {
        var out = Runtime_V1_ListPodSandboxMetricsResponse()
        out.podMetrics = await containers.listPodStats(SandboxFilter()).map(Self.podMetrics)
        return out
    }

    static func podMetrics(_ v: PodStatsValue) -> Runtime_V1_PodSandboxMetrics {
        var p = Runtime_V1_PodSandboxMetrics()
        p.podSandboxID = v.sandbox.id
        let meta = v.sandbox.metadata
        for i in v.interfaces {
            let labels = [meta.namespace, meta.name, i.name]
            let values: [(String, UInt64)] = [
                ("container_network_receive_bytes_total", i.rxBytes), ("container_network_receive_packets_total", i.rxPackets),
                ("container_network_receive_errors_total", i.rxErrors), ("container_network_receive_packets_dropped_total", i.rxDropped),
                ("container_network_transmit_bytes_total", i.txBytes), ("container_network_transmit_packets_total", i.txPackets),
                ("container_network_transmit_errors_total", i.txErrors), ("container_network_transmit_packets_dropped_total", i.txDropped),
            ]
            p.metrics += values.map { metric($0.0, $0.1, labels: labels, at: v.timestamp) }
        }
        p.containerMetrics = v.containers.map { c in
            var m = Runtime_V1_ContainerMetrics()
            m.containerID = c.record.id
            let labels = [c.record.name, c.record.id, c.record.image, c.record.name, meta.namespace, meta.name]
            var values: [(String, UInt64)] = []
            if let s = c.sample {
                values += [
                    ("container_cpu_usage_seconds_total", s.cpuUsageNanos / 1_000_000_000),
                    ("container_cpu_user_seconds_total", s.cpuUserNanos / 1_000_000_000),
                    ("container_cpu_system_seconds_total", s.cpuSystemNanos / 1_000_000_000),
                    ("container_memory_usage_bytes", s.memoryUsageBytes), ("container_memory_working_set_bytes", s.memoryWorkingSetBytes),
                    ("container_memory_rss", s.memoryRSSBytes), ("container_memory_cache", s.memoryCacheBytes),
                    ("container_memory_failcnt", s.memoryFailcnt), ("container_memory_failures_total", s.majorPageFaults),
                    ("container_oom_events_total", s.oomKills),
                    ("container_processes", s.leafProcesses ?? s.processes), ("container_threads", s.threads),
                ]
            }
            if let fs = c.writableLayer {
                values += [("container_fs_usage_bytes", fs.usedBytes), ("container_fs_inodes_total", fs.inodesUsed)]
            }
            if let r = c.record.resources {
                values += [("container_spec_memory_limit_bytes", UInt64(max(r.memoryLimit, 0))),
                           ("container_spec_cpu_shares", UInt64(max(r.cpuShares, 0))),
                           ("container_spec_cpu_quota", UInt64(max(r.cpuQuota, 0))),
                           ("container_spec_cpu_period", UInt64(max(r.cpuPeriod, 0)))]
            }
            m.metrics = values.map { metric($0.0, $0.1, labels: labels, at: c.timestamp) }
            return m
        }
        return p
    }

    static let metricTypes: [String: Runtime_V1_MetricType] = Dictionary(uniqueKeysWithValues: metricSpecs.map { ($0.name, $0.type) })

    static func metric(_ name: String, _ value: UInt64, labels: [String], at timestamp: Int64) -> Runtime_V1_Metric {
        var m = Runtime_V1_Metric()
        m.name = name
        m.timestamp = timestamp
        m.metricType = metricTypes[name] ?? .gauge
        m.labelValues = labels
        m.value.value = value
        return m
    }
}
