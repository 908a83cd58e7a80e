"""The HTML report: page building blocks, the leaderboard, comparison and card pages, the site writer."""
