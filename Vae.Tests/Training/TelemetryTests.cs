using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;

namespace Vae.Tests.Training;

/// <summary>What a trainer publishes to an <see cref="ILogger"/>, the <c>Vae</c> meter and the <c>Vae</c> activity source,
/// heard by the framework's own listeners. Each test trains under a data set name of its own, so that runs of other
/// tests in parallel are told apart by their tags.</summary>
public class TelemetryTests
{
    /// <summary>30 steps of M = 100 with an evaluation and a checkpoint every 1000 samples, under a fresh data set name.</summary>
    static (TrainingSummary Summary, string Dataset) Train(ILogger? logger = null)
    {
        string dataset = "telemetry-" + Guid.NewGuid().ToString("N");
        using var trainer = new AevbTrainer(SmallMnist.Model, SmallMnist.Aevb(), dataset);
        var summary = trainer.Fit(SmallMnist.Train, new TrainingOptions
        {
            TotalSamples = 3000, EvaluateEvery = 1000, TestData = SmallMnist.Test, TensorBoard = false,
            RunDirectory = Path.Combine(TestEnvironment.NewTempDirectory(), "run"), Logger = logger, ProgressInterval = TimeSpan.Zero,
        }, new Progress<TrainingProgress>());
        return (summary, dataset);
    }

    [Fact]
    public void TheMeterPublishesSamplesStepTimesBoundsAndCheckpoints()
    {
        var seen = new ConcurrentQueue<(string Instrument, double Value, string? Split, string Dataset)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) => { if (instrument.Meter.Name == VaeTelemetry.Name) l.EnableMeasurementEvents(instrument); };
        void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            string? split = null, dataset = "";
            foreach (var t in tags)
            {
                if (t.Key == "vae.split") split = (string?)t.Value;
                if (t.Key == "vae.dataset") dataset = (string?)t.Value ?? "";
            }
            seen.Enqueue((instrument.Name, value, split, dataset));
        }
        listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i, v, tags));
        listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i, v, tags));
        listener.Start();

        var (summary, dataset) = Train();
        var mine = seen.Where(m => m.Dataset == dataset).ToArray();
        Assert.Equal(3000, mine.Where(m => m.Instrument == "vae.training.samples").Sum(m => m.Value));
        Assert.Equal(30, mine.Count(m => m.Instrument == "vae.training.step.duration"));
        Assert.All(mine.Where(m => m.Instrument == "vae.training.step.duration"), m => Assert.InRange(m.Value, 0, 60));
        Assert.Contains(mine, m => m.Instrument == "vae.training.throughput" && m.Value > 0);
        Assert.Equal(summary.Evaluations.Select(e => e.TrainBound), mine.Where(m => m.Instrument == "vae.training.bound" && m.Split == "train").Select(m => m.Value));
        Assert.Equal(summary.Evaluations.Select(e => e.TestBound), mine.Where(m => m.Instrument == "vae.training.bound" && m.Split == "test").Select(m => m.Value));
        Assert.Equal(3, mine.Where(m => m.Instrument == "vae.training.checkpoints").Sum(m => m.Value));
    }

    [Fact]
    public void TheActivitySourceSpansTheFitItsEvaluationsAndItsCheckpoints()
    {
        var stopped = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == VaeTelemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = stopped.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);

        var (summary, dataset) = Train();
        var fit = Assert.Single(stopped, a => a.OperationName == "vae.fit" && (string?)a.GetTagItem("vae.dataset") == dataset);
        var children = stopped.Where(a => a.ParentSpanId == fit.SpanId).ToArray();
        Assert.Equal(summary.Evaluations.Select(e => e.SamplesSeen), children.Where(a => a.OperationName == "vae.evaluate").Select(a => (long)a.GetTagItem("vae.samples")!));
        Assert.Equal(3, children.Count(a => a.OperationName == "vae.checkpoint"));
        Assert.All(children, a => Assert.True(a.StartTimeUtc >= fit.StartTimeUtc && a.StartTimeUtc + a.Duration <= fit.StartTimeUtc + fit.Duration));
    }

    [Fact]
    public void TheLoggerHearsTheStartEachEvaluationEachCheckpointAndTheEnd()
    {
        var logger = new ListLogger();
        var (summary, dataset) = Train(logger);
        var lines = logger.Lines.ToArray();
        Assert.Contains(lines, l => l.Level == LogLevel.Information && l.Message.StartsWith($"aevb on {dataset}: 0 of 3000 samples", StringComparison.Ordinal));
        Assert.Equal(summary.Evaluations.Count, lines.Count(l => l.Level == LogLevel.Information && l.Message.StartsWith("evaluation at ", StringComparison.Ordinal)));
        Assert.Equal(3, lines.Count(l => l.Level == LogLevel.Debug && l.Message.StartsWith("checkpoint at ", StringComparison.Ordinal)));
        Assert.StartsWith("finished at 3000 samples", lines[^1].Message);
    }

    sealed class ListLogger : ILogger
    {
        public ConcurrentQueue<(LogLevel Level, string Message)> Lines { get; } = new();
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Lines.Enqueue((logLevel, formatter(state, exception)));
    }
}
