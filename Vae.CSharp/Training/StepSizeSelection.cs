using Vae.Core;
using Vae.Data;

namespace Vae;

/// <summary>One candidate of <see cref="StepSizeSelection"/>: its step size and the training bound per datapoint after
/// its trial (negative infinity when the trial stopped on a non-finite bound).</summary>
public sealed record StepSizeTrial(double StepSize, double TrainingBound);

/// <summary>The outcome of <see cref="StepSizeSelection.Choose"/>: the chosen step size, every trial in the order tried,
/// and the options to train with (those given, with the chosen step size).</summary>
public sealed record StepSizeChoice(double StepSize, IReadOnlyList<StepSizeTrial> Trials, AevbOptions Options);

/// <summary>Section 5's choice of Adagrad's global step size: "chosen from {0.01, 0.02, 0.1} based on performance on the
/// training set in the first few iterations". Each candidate trains a fresh run (same model, seed and settings) for
/// the trial's samples; the one with the highest training bound wins (the earlier candidate on a tie). Train the real
/// run afterwards with the chosen step size: it starts from the same initialisation as the trials.</summary>
public static class StepSizeSelection
{
    /// <summary>The paper's candidates: 0.01, 0.02 and 0.1.</summary>
    public static IReadOnlyList<double> PaperCandidates { get; } = [0.01, 0.02, 0.1];

    /// <summary>Training samples of each trial by default: 10⁵ (1000 minibatches of 100, the first 100 of them Adagrad's warm-up).</summary>
    public const long DefaultTrialSamples = 100_000;

    /// <summary>EM iterations of each Monte Carlo EM trial: 10, the "first few iterations" of an algorithm whose iteration
    /// is a pass over the whole training set (with anglepy's warm-up of 10 updates, 8 of them move the weights).</summary>
    public const int McemTrialIterations = 10;

    /// <summary>The trial length for an algorithm on <paramref name="trainImages"/> images: <see cref="DefaultTrialSamples"/>,
    /// or <see cref="McemTrialIterations"/> EM iterations (5N samples each) for Monte Carlo EM.</summary>
    public static long TrialSamples(TrainingAlgorithm algorithm, int trainImages) =>
        algorithm == TrainingAlgorithm.MonteCarloEm ? McemTrialIterations * Vae.Core.Mcem.samplesPerIteration(trainImages) : DefaultTrialSamples;

    /// <summary>Tries every candidate step size. <paramref name="createTrainer"/> makes a fresh trainer from AEVB
    /// options (e.g. <c>o =&gt; new AevbTrainer(model, o)</c>); it receives <paramref name="options"/> with only the step
    /// size changed. The training bound is the lower bound (estimator B) on the first
    /// <paramref name="evaluationPoints"/> training images. Monte Carlo EM has no recognition model and so no bound: its
    /// measure is Appendix D's estimate of log p(x) on the first 100 training images (what its training evaluations
    /// report), after trials of <see cref="TrialSamples"/>.</summary>
    public static StepSizeChoice Choose(Func<AevbOptions, Trainer> createTrainer, AevbOptions options, ImageData train,
        IReadOnlyList<double>? candidates = null, long trialSamples = DefaultTrialSamples, int evaluationPoints = 10_000,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(createTrainer);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(train);
        var steps = candidates ?? PaperCandidates;
        if (steps.Count == 0) throw new ArgumentException("candidates: expected at least one step size", nameof(candidates));
        if (steps.Any(s => !(s > 0) || !double.IsFinite(s))) throw new ArgumentOutOfRangeException(nameof(candidates), "candidates: expected positive step sizes");
        if (trialSamples < 1) throw new ArgumentOutOfRangeException(nameof(trialSamples), trialSamples, "trial samples: expected at least 1");
        if (evaluationPoints < 1) throw new ArgumentOutOfRangeException(nameof(evaluationPoints), evaluationPoints, "evaluation points: expected at least 1");

        var trials = new List<StepSizeTrial>();
        foreach (double step in steps)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var trainer = createTrainer(options.WithStepSize(step));
            double bound;
            try
            {
                var summary = trainer.Fit(train, new TrainingOptions { TotalSamples = trialSamples, EvaluateEvery = 0, TrainEvaluationLimit = evaluationPoints, TensorBoard = false },
                    null, cancellationToken);
                if (summary.Cancelled) throw new OperationCanceledException(cancellationToken);
                bound = summary.Evaluations[^1].TrainBound;
            }
            catch (NonFiniteBoundException)
            {
                bound = double.NegativeInfinity;
            }
            trials.Add(new StepSizeTrial(step, double.IsFinite(bound) ? bound : double.NegativeInfinity));
        }
        var best = trials.MaxBy(t => t.TrainingBound)!; // the first of equal bounds
        if (double.IsNegativeInfinity(best.TrainingBound))
            throw new InvalidOperationException($"every candidate step size ({string.Join(", ", steps)}) stopped on a non-finite bound");
        return new StepSizeChoice(best.StepSize, trials, options.WithStepSize(best.StepSize));
    }
}
