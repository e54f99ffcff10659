using Vae.Core;
using Vae.Data;

namespace Vae;

/// <summary>How to estimate the marginal likelihood log p(x).</summary>
public enum MarginalLikelihoodMethod
{
    /// <summary>The lower bound (ELBO, estimator B with one sample): a lower bound on log p(x).</summary>
    Elbo,
    /// <summary>The importance-weighted estimate with K samples from the encoder (Burda et al.): a tighter lower bound.</summary>
    ImportanceWeighted,
    /// <summary>Appendix D's estimator: HMC posterior samples, a kernel density estimate, and a harmonic-mean-style
    /// estimate. Needs no encoder; reliable for fewer than 5 latent dimensions.</summary>
    HmcMarginal,
    /// <summary>The exact log p(x) = log ∫ p(x|z) p(z) dz by quadrature: the trapezoid rule on a grid placed on each
    /// posterior's mass and refined until the estimate changes by less than 0.01 nats. For at most 3 latent dimensions;
    /// the ground truth the other methods are measured against.</summary>
    Exact,
}

/// <summary>Settings of <see cref="MarginalLikelihoodEstimator"/>.</summary>
public sealed record MarginalLikelihoodOptions
{
    /// <summary>The method.</summary>
    public MarginalLikelihoodMethod Method { get; init; } = MarginalLikelihoodMethod.ImportanceWeighted;
    /// <summary>Samples K of the importance-weighted estimate.</summary>
    public int ImportanceSamples { get; init; } = 5000;
    /// <summary>The importance-weighted estimate with the decoder's output multiply in bfloat16 (Bernoulli decoders; see
    /// <see cref="VariationalAutoEncoder.LogLikelihood"/>). Off: the model's dtype throughout.</summary>
    public bool MixedPrecision { get; init; }
    /// <summary>HMC posterior samples per datapoint of Appendix D's estimator (the paper: 50).</summary>
    public int PosteriorSamples { get; init; } = 50;
    /// <summary>Leapfrog steps per HMC transition of Appendix D's estimator (the paper: 4).</summary>
    public int LeapfrogSteps { get; init; } = 4;
    /// <summary>HMC transitions before sampling (with step-size adaptation), from each chain's start: the best, by
    /// log p(x, z), of draws from q(z|x) and from the prior. For a model trained without an encoder (Monte Carlo EM)
    /// 100 transitions leave stuck chains and absurd estimates.</summary>
    public int BurnIn { get; init; } = 1000;
    /// <summary>Appendix D's chains start at the best, by log p(x, z), of this many draws from q(z|x) and as many from the
    /// prior; 0 starts each at one draw from the prior, as the paper's code does (anglepy's <c>hmc_est.py</c> with
    /// <c>gen_xz</c>).</summary>
    public int StartCandidates { get; init; } = MarginalLikelihood.paper.StartCandidates;
    /// <summary>The seed of all sampling.</summary>
    public long Seed { get; init; }
    /// <summary>Independent repetitions of the estimate, with seeds <see cref="Seed"/>, <see cref="Seed"/> + 1, ...:
    /// <see cref="MarginalLikelihoodEstimator.EstimateWithError"/> reports their mean and its standard error (a bound
    /// with one ε draw per datapoint varies by nats from draw to draw on Frey Face).</summary>
    public int Draws { get; init; } = 1;
    /// <summary>Appendix D: a chain that did not move through one half of its samples (every proposal rejected) counts as
    /// not mixed and is estimated again, continuing its chain. Off: such a chain's spike of a density estimate enters
    /// the estimate, far too low, as in records made before 2026-12-07 (<c>vae verify</c> replays those so).</summary>
    public bool RetryStuckChains { get; init; } = true;
}

/// <summary>An estimate repeated over independent draws.</summary>
/// <param name="Mean">The mean over the draws (nats per datapoint).</param>
/// <param name="StandardError">The standard error of that mean: the draws' standard deviation over √draws (NaN for one draw).</param>
/// <param name="Draws">How many draws.</param>
public sealed record MarginalLikelihoodEstimate(double Mean, double StandardError, int Draws);

/// <summary>Estimates the average log p(x) per datapoint (nats) of a model's generative model on data.</summary>
public sealed class MarginalLikelihoodEstimator(MarginalLikelihoodOptions? options = null)
{
    /// <summary>The most latent dimensions <see cref="MarginalLikelihoodMethod.Exact"/> integrates over.</summary>
    public const int ExactMaxLatentDimensions = 3;

    /// <summary>The settings.</summary>
    public MarginalLikelihoodOptions Options { get; } = Validate(options ?? new MarginalLikelihoodOptions());

    static MarginalLikelihoodOptions Validate(MarginalLikelihoodOptions o)
    {
        if (o.ImportanceSamples < 1) throw new ArgumentOutOfRangeException(nameof(o.ImportanceSamples), o.ImportanceSamples, "K: expected at least 1");
        if (o.PosteriorSamples < 4) throw new ArgumentOutOfRangeException(nameof(o.PosteriorSamples), o.PosteriorSamples, "posterior samples: expected at least 4");
        if (o.LeapfrogSteps < 1) throw new ArgumentOutOfRangeException(nameof(o.LeapfrogSteps), o.LeapfrogSteps, "leapfrog steps: expected at least 1");
        if (o.BurnIn < 0) throw new ArgumentOutOfRangeException(nameof(o.BurnIn), o.BurnIn, "burn-in: expected at least 0");
        if (o.StartCandidates < 0) throw new ArgumentOutOfRangeException(nameof(o.StartCandidates), o.StartCandidates, "start candidates: expected at least 0 (0: one draw from the prior)");
        if (o.Draws < 1) throw new ArgumentOutOfRangeException(nameof(o.Draws), o.Draws, "draws: expected at least 1");
        return o;
    }

    /// <summary>The estimate repeated <see cref="MarginalLikelihoodOptions.Draws"/> times with seeds Seed, Seed + 1, ...
    /// (the first draw is what one draw with Seed gives), with the standard error of their mean.</summary>
    public MarginalLikelihoodEstimate EstimateWithError(VariationalAutoEncoder model, ImageData data, CancellationToken cancellationToken = default)
    {
        var values = new double[Options.Draws];
        for (int d = 0; d < values.Length; d++)
            values[d] = new MarginalLikelihoodEstimator(Options with { Seed = Options.Seed + d, Draws = 1 }).Estimate(model, data, cancellationToken);
        double mean = values.Average();
        double se = values.Length < 2 ? double.NaN : Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Length - 1) / values.Length);
        return new MarginalLikelihoodEstimate(mean, se, values.Length);
    }

    /// <summary>The average estimate per datapoint over <paramref name="data"/>.</summary>
    public double Estimate(VariationalAutoEncoder model, ImageData data)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        if (Options.Draws > 1) return EstimateWithError(model, data).Mean;
        switch (Options.Method)
        {
            case MarginalLikelihoodMethod.Elbo: return model.LowerBound(data, SgvbEstimator.B, Options.Seed);
            case MarginalLikelihoodMethod.ImportanceWeighted: return model.LogLikelihood(data, Options.ImportanceSamples, Options.Seed, Options.MixedPrecision);
            default:
                if (data.Dimension != model.Core.Config.InputDim)
                    throw new ArgumentException($"data: expected images of {model.Core.Config.InputDim} values, got {data.Dimension}", nameof(data));
                using (TorchSharp.torch.NewDisposeScope())
                using (var x = model.Data(data))
                    return (Options.Method == MarginalLikelihoodMethod.Exact ? Exact(model.Core, x, Torch.generator(Options.Seed)) : AppendixD(model.Core, x, Torch.generator(Options.Seed))) - model.LogScaleSum;
        }
    }

    /// <summary>As <see cref="Estimate(VariationalAutoEncoder, ImageData)"/>, and cancellable: the bound, the
    /// importance-weighted estimate and the exact quadrature go through the data 1000 images at a time with one random generator (the draws of a
    /// single call), checking <paramref name="cancellationToken"/> between slices; Appendix D's estimate, whose chains
    /// run together, checks it before it starts.</summary>
    public double Estimate(VariationalAutoEncoder model, ImageData data, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        if (Options.Draws > 1) return EstimateWithError(model, data, cancellationToken).Mean;
        cancellationToken.ThrowIfCancellationRequested();
        if (Options.Method == MarginalLikelihoodMethod.HmcMarginal) return Estimate(model, data);
        // A multiple of both estimators' batches (1000 and 100 images), so that every batch draws what it draws in one call.
        const int Slice = 1000;
        var g = Torch.generator(Options.Seed);
        using var scope = TorchSharp.torch.NewDisposeScope();
        var all = model.Data(data);
        double total = 0;
        for (int start = 0; start < data.Count; start += Slice)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int count = Math.Min(Slice, data.Count - start);
            using var slice = TorchSharp.torch.NewDisposeScope();
            total += Estimate(model.Core, all.narrow(0, start, count), g) * count;
        }
        return total / data.Count - model.LogScaleSum;
    }

    /// <summary>Appendix D's estimate with these settings for data x (a tensor of the model's dtype), sampling from g.</summary>
    internal double AppendixD(VaeModel model, TorchSharp.torch.Tensor x, TorchSharp.torch.Generator g)
    {
        var paper = MarginalLikelihood.paper;
        var config = new MarginalLikelihoodConfig(Options.PosteriorSamples, Options.BurnIn, paper.Thinning,
            new HmcConfig(Options.LeapfrogSteps, paper.Hmc.TargetAcceptance, paper.Hmc.MaxAdaptFactor, paper.Hmc.RandomSign),
            paper.BandwidthMultiples, paper.InitialStepSize, paper.PerChainStepSizes, paper.MixingTolerance, paper.MixingShift, paper.Retries,
            Options.StartCandidates, Options.RetryStuckChains);
        return MarginalLikelihood.ofModel(config, model, x, g);
    }

    /// <summary>The exact log p(x) by quadrature (<see cref="MarginalLikelihoodMethod.Exact"/>) for data x (a tensor of the
    /// model's dtype), the grids' first centres drawn from g. Throws <see cref="ArgumentException"/> for more than 3 latent
    /// dimensions and <see cref="EstimateNotConvergedException"/> when a datapoint did not converge.</summary>
    internal static double Exact(VaeModel model, TorchSharp.torch.Tensor x, TorchSharp.torch.Generator g)
    {
        if (model.Config.LatentDim > ExactMaxLatentDimensions)
            throw new ArgumentException($"model: exact quadrature integrates over at most {ExactMaxLatentDimensions} latent dimensions; this model has J = {model.Config.LatentDim} (use ImportanceWeighted or HmcMarginal)", nameof(model));
        var config = Quadrature.defaults;
        using var scope = TorchSharp.torch.NewDisposeScope();
        var (estimates, change) = Quadrature.ofModel(config, model, x, g);
        // The tolerance applies to the mean the method reports: each datapoint's last refinement changed its estimate
        // by change_i, so the mean's last change is at most their mean. A datapoint whose grids did not hold its
        // posterior mass (an infinite change) leaves the mean unbounded.
        int unconverged = (int)change.ge(config.Tolerance).sum().item<long>();
        int beyond = (int)change.isinf().sum().item<long>();
        double meanChange = beyond > 0 ? double.PositiveInfinity : change.mean().item<double>();
        if (!(meanChange < config.Tolerance))
        {
            double largest = change.masked_fill(change.isinf(), double.NaN).nan_to_num(0.0).max().item<double>();
            // The first datapoints (0-based, in the order given) that did not converge, so that they can be looked at.
            var failed = change.ge(config.Tolerance).nonzero().flatten().data<long>().Take(10).ToArray();
            throw new EstimateNotConvergedException(
                $"exact quadrature: the mean over {x.shape[0]} datapoints did not converge to {config.Tolerance} nats: {beyond} datapoints with posterior mass still beyond their grids (a heavy tail, or more than {config.MaxModes} separate bodies); {unconverged - beyond} others still changed by up to {largest:G3} nats at {config.MaxPoints} grid points; no exact value is reported (datapoints {string.Join(", ", failed)}{(unconverged > failed.Length ? ", ..." : "")})",
                unconverged, (int)x.shape[0]);
        }
        return estimates.mean().item<double>();
    }

    /// <summary>The estimate for data x (a tensor of the model's dtype), sampling from g: what training evaluations use.</summary>
    internal double Estimate(VaeModel model, TorchSharp.torch.Tensor x, TorchSharp.torch.Generator g) => Options.Method switch
    {
        MarginalLikelihoodMethod.Elbo => Evaluation.bound(EstimatorKind.B, model, x, 1000, g),
        MarginalLikelihoodMethod.ImportanceWeighted => Evaluation.importanceWeightedIn(Options.MixedPrecision, model, x, Options.ImportanceSamples, 100, g),
        MarginalLikelihoodMethod.Exact => Exact(model, x, g),
        _ => AppendixD(model, x, g),
    };
}

/// <summary>An estimate that could not reach its stated precision on some datapoints (the exact quadrature of
/// <see cref="MarginalLikelihoodMethod.Exact"/>): no value is reported rather than an inexact one.</summary>
/// <param name="message">What did not converge.</param>
/// <param name="unconverged">How many datapoints.</param>
/// <param name="count">Of how many.</param>
public sealed class EstimateNotConvergedException(string message, int unconverged, int count) : Exception(message)
{
    /// <summary>The datapoints that did not converge.</summary>
    public int Unconverged { get; } = unconverged;
    /// <summary>The datapoints estimated.</summary>
    public int Count { get; } = count;
}
