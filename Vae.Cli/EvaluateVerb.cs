using System.Globalization;
using System.Text.Json;
using Vae.Data;

namespace Vae.Cli;

/// <summary><c>vae evaluate</c>: a checkpoint's test bound and importance-weighted log-likelihood, or one
/// estimator (elbo, iwae, hmc-marginal) on the training and test sets.</summary>
static class EvaluateVerb
{
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var a = new Arguments("evaluate", args, ["checkpoint", "estimator", "k", "points", "posterior-samples", "leapfrog", "burn-in", "seed", "threads", "cache", "frey-face", "precision"], ["json"]);
        a.AtMostPositional(0, "evaluate");
        string path = a.String("checkpoint") ?? throw new UsageException("evaluate: --checkpoint FILE is required");
        path = Trainer.CheckpointPath(path);
        string? estimator = a.Has("estimator") ? a.Choice("estimator", "iwae", "elbo", "iwae", "hmc-marginal") : null;
        int k = (int)a.Integer("k", 5000, 1, 1_000_000);
        int points = (int)a.Integer("points", 0, 1, int.MaxValue);
        int posteriorSamples = (int)a.Integer("posterior-samples", 50, 4, 100_000);
        int leapfrog = (int)a.Integer("leapfrog", 4, 1, 10_000);
        int burnIn = (int)a.Integer("burn-in", new MarginalLikelihoodOptions().BurnIn, 0, 10_000_000);
        long seed = a.Integer("seed", 0, 0);
        bool mixed = a.Choice("precision", "float32", "float32", "bfloat16") == "bfloat16";
        a.Threads(stderr);
        if (!File.Exists(path)) throw new UsageException($"--checkpoint: {path}: no such file");

        var settings = VariationalAutoEncoder.ReadSettings(path);
        var model = VariationalAutoEncoder.Load(path);
        if (mixed && (estimator is "elbo" or "hmc-marginal"))
            throw new UsageException($"--precision bfloat16: applies to the importance-weighted estimate, not --estimator {estimator}");
        var data = DataChoice.FromFields(settings, a.String("cache"), a.String("frey-face"));
        var set = data.Load(stderr);
        ImageData First(ImageData x) => points > 0 && points < x.Count ? new ImageData(points, x.Height, x.Width, x.Pixels[..(points * x.Dimension)]) : x;
        var test = First(set.Test);
        var results = new Dictionary<string, object> { ["checkpoint"] = path, ["dataset"] = set.Description, ["test_points"] = test.Count, ["precision"] = mixed ? "bfloat16" : "float32" };
        var lines = new List<string> { $"{path}: {set.Description}" };
        if (estimator is null)
        {
            double bound = model.LowerBound(test, SgvbEstimator.B, seed);
            double iwae = model.LogLikelihood(test, k, seed, mixed);
            results["k"] = k; results["test_bound"] = bound; results["test_iwae"] = iwae;
            lines.Add(string.Create(CultureInfo.InvariantCulture, $"test lower bound per datapoint ({test.Count} images): {bound:F3} nats"));
            lines.Add(string.Create(CultureInfo.InvariantCulture, $"test log-likelihood (importance-weighted, K = {k}{(mixed ? ", bfloat16 output multiply" : "")}): {iwae:F3} nats"));
        }
        else
        {
            var method = estimator switch { "elbo" => MarginalLikelihoodMethod.Elbo, "iwae" => MarginalLikelihoodMethod.ImportanceWeighted, _ => MarginalLikelihoodMethod.HmcMarginal };
            var estimatorObject = new MarginalLikelihoodEstimator(new MarginalLikelihoodOptions
            {
                Method = method, ImportanceSamples = k, MixedPrecision = mixed, PosteriorSamples = posteriorSamples, LeapfrogSteps = leapfrog, BurnIn = burnIn, Seed = seed,
            });
            var train = First(set.Train);
            string key = estimator.Replace('-', '_');
            double onTrain = estimatorObject.Estimate(model, train);
            double onTest = estimatorObject.Estimate(model, test);
            results["estimator"] = estimator; results["train_points"] = train.Count;
            if (method == MarginalLikelihoodMethod.HmcMarginal) { results["posterior_samples"] = posteriorSamples; results["leapfrog"] = leapfrog; results["burn_in"] = burnIn; }
            results["train_" + key] = onTrain; results["test_" + key] = onTest;
            string detail = method switch
            {
                MarginalLikelihoodMethod.Elbo => "lower bound",
                MarginalLikelihoodMethod.ImportanceWeighted => $"importance-weighted, K = {k}{(mixed ? ", bfloat16 output multiply" : "")}",
                _ => $"Appendix D: {posteriorSamples} HMC posterior samples after {burnIn} burn-in transitions, {leapfrog} leapfrog steps",
            };
            lines.Add(string.Create(CultureInfo.InvariantCulture, $"train ({train.Count} images) {estimator} ({detail}): {onTrain:F3} nats per datapoint"));
            lines.Add(string.Create(CultureInfo.InvariantCulture, $"test ({test.Count} images) {estimator} ({detail}): {onTest:F3} nats per datapoint"));
        }
        if (a.Has("json")) stdout.WriteLine(JsonSerializer.Serialize(results));
        else foreach (var line in lines) stdout.WriteLine(line);
        return VaeCommand.Ok;
    }
}
