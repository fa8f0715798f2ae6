"""Pure folds from events to the views users see, and the checkpointed task view.

May import `events`; must not import `ghost`; never touches processes.
"""
