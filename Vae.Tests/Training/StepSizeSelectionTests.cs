using Vae.Data;

namespace Vae.Tests.Training;

/// <summary>Section 5's step-size selection: each candidate's trial is an ordinary run, and the best training bound wins.</summary>
public class StepSizeSelectionTests
{
    static readonly double[] Candidates = [0.01, 0.05, 0.3];

    [Fact]
    public void TheChosenStepSizeHasTheHighestTrainingBoundOfTrialsThatAreOrdinaryRuns()
    {
        var options = SmallMnist.Aevb(seed: 3);
        var choice = StepSizeSelection.Choose(o => new AevbTrainer(SmallMnist.Model, o), options, SmallMnist.Train, Candidates, trialSamples: 20_000, evaluationPoints: 500);

        Assert.Equal(Candidates, choice.Trials.Select(t => t.StepSize));
        Assert.Equal(choice.Trials.MaxBy(t => t.TrainingBound)!.StepSize, choice.StepSize);
        Assert.Equal(choice.StepSize, choice.Options.StepSize);
        Assert.Equal((options.Seed, options.BatchSize, options.WarmUp, options.Estimator), (choice.Options.Seed, choice.Options.BatchSize, choice.Options.WarmUp, choice.Options.Estimator));
        Assert.True(choice.Trials.Select(t => t.TrainingBound).Distinct().Count() == Candidates.Length, "different step sizes train differently");
        // A trial is the run that the chosen step size then trains: the same bound from a separate run.
        var trial = choice.Trials.Single(t => t.StepSize == choice.StepSize);
        var again = new AevbTrainer(SmallMnist.Model, new AevbOptions { Seed = 3, StepSize = choice.StepSize });
        var summary = again.Fit(SmallMnist.Train, new TrainingOptions { TotalSamples = 20_000, EvaluateEvery = 0, TrainEvaluationLimit = 500, TensorBoard = false });
        Assert.Equal(trial.TrainingBound, summary.Evaluations[^1].TrainBound);
    }

    [Fact]
    public void MonteCarloEmTrialsAreOrdinaryRunsJudgedByTheirTrainingLogLikelihood()
    {
        // 300 training images: a trial of 4 EM iterations (the trial length TrialSamples gives for 4 iterations' worth).
        var train = SmallMnist.Train.First(300);
        var options = new AevbOptions { Seed = 5, StepSize = 0.05, WarmUp = 10 };
        long trial = 4 * Vae.Core.Mcem.samplesPerIteration(300);
        Assert.Equal(StepSizeSelection.McemTrialIterations * Vae.Core.Mcem.samplesPerIteration(300), StepSizeSelection.TrialSamples(TrainingAlgorithm.MonteCarloEm, 300));
        Assert.Equal(StepSizeSelection.DefaultTrialSamples, StepSizeSelection.TrialSamples(TrainingAlgorithm.Aevb, 300));
        var choice = StepSizeSelection.Choose(o => new McemTrainer(SmallMnist.Model, o), options, train, Candidates, trialSamples: trial);
        Assert.Equal(choice.Trials.MaxBy(t => t.TrainingBound)!.StepSize, choice.StepSize);
        Assert.Equal(10, choice.Options.WarmUp);
        Assert.All(choice.Trials, t => Assert.True(double.IsFinite(t.TrainingBound) && t.TrainingBound < 0, $"step {t.StepSize}: {t.TrainingBound}"));
        // The measure is what the run itself reports at that point: Appendix D on its first 100 training images.
        using var again = new McemTrainer(SmallMnist.Model, new AevbOptions { Seed = 5, StepSize = choice.StepSize, WarmUp = 10 });
        var summary = again.Fit(train, new TrainingOptions { TotalSamples = trial, EvaluateEvery = 0, TensorBoard = false });
        Assert.Equal(choice.Trials.Single(t => t.StepSize == choice.StepSize).TrainingBound, summary.Evaluations[^1].TrainBound);
    }

    [Fact]
    public void BadCandidatesAreRefused()
    {
        var options = SmallMnist.Aevb();
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            StepSizeSelection.Choose(o => new AevbTrainer(SmallMnist.Model, o), options, SmallMnist.Train, [0.01, -1.0]));
        Assert.Throws<ArgumentException>(() =>
            StepSizeSelection.Choose(o => new AevbTrainer(SmallMnist.Model, o), options, SmallMnist.Train, []));
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            StepSizeSelection.Choose(o => new AevbTrainer(SmallMnist.Model, o), options, SmallMnist.Train, trialSamples: 0));
    }
}
