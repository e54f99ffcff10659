using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Vae;

/// <summary>What training publishes to .NET's observability: a <see cref="Meter"/> and an <see cref="ActivitySource"/>,
/// both named <see cref="Name"/>, for OpenTelemetry, dotnet-counters or any <see cref="MeterListener"/> and
/// <see cref="ActivityListener"/>. Each measurement is tagged with the run's <c>vae.algorithm</c> and
/// <c>vae.dataset</c>.</summary>
public static class VaeTelemetry
{
    /// <summary>"Vae": the meter's and the activity source's name.</summary>
    public const string Name = "Vae";

    /// <summary>The meter of training runs.</summary>
    public static Meter Meter { get; } = new(Name, typeof(VaeTelemetry).Assembly.GetName().Version?.ToString());

    /// <summary>The source of the <c>vae.fit</c>, <c>vae.evaluate</c> and <c>vae.checkpoint</c> activities.</summary>
    public static ActivitySource ActivitySource { get; } = new(Name, typeof(VaeTelemetry).Assembly.GetName().Version?.ToString());

    /// <summary><c>vae.training.samples</c>: training samples evaluated (M per step; 5 N per Monte Carlo EM iteration).</summary>
    internal static readonly Counter<long> Samples = Meter.CreateCounter<long>("vae.training.samples", "{sample}", "Training samples evaluated");
    /// <summary><c>vae.training.step.duration</c>: wall-clock time of each training step.</summary>
    internal static readonly Histogram<double> StepDuration = Meter.CreateHistogram<double>("vae.training.step.duration", "s", "Time of one training step");
    /// <summary><c>vae.training.throughput</c>: samples per second since the call to Fit began, at each progress report.</summary>
    internal static readonly Gauge<double> Throughput = Meter.CreateGauge<double>("vae.training.throughput", "{sample}/s", "Training samples per second");
    /// <summary><c>vae.training.bound</c>: the latest evaluation's bound (or log-likelihood estimate) per datapoint,
    /// tagged <c>vae.split</c> = train or test.</summary>
    internal static readonly Gauge<double> Bound = Meter.CreateGauge<double>("vae.training.bound", "nat", "The latest evaluation per datapoint");
    /// <summary><c>vae.training.checkpoints</c>: checkpoints written.</summary>
    internal static readonly Counter<long> Checkpoints = Meter.CreateCounter<long>("vae.training.checkpoints", "{checkpoint}", "Checkpoints written");
}
